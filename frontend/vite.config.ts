import { defineConfig } from "vitest/config";

// The API is on the same origin in every deployment (nginx serves this build at / and proxies
// /api and /socket.io/); `npm run dev` proxies them to a running `make up` on port 8080.
const api = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.COLLABRY_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    target: "es2022",
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    // No inline scripts anywhere: the Content-Security-Policy allows scripts from 'self' only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false },
      "/socket.io": { target: api, ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["test/**/*.test.ts"],
  },
});
