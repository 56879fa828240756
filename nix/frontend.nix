# The web front end (frontend/): a single-page app built with Vite from frontend/package-lock.json
# and served by nginx as static files at / (docs/frontend.md). Node is needed only here, to build
# it: the output is plain files, and no service runs node.
#
# The npm packages come from nixpkgs' importNpmLock: each package of the lockfile is fetched by
# the URL (`resolved`) and the hash (`integrity`) recorded in it, so there is no separate hash to
# keep in step with the lockfile; `npm ci` then installs exactly the lockfile, offline.
#
# Output: $out/index.html, $out/favicon.svg and $out/assets/<name>-<hash>.{js,css}; the nginx
# vhost sets `root` to it and includes nginx/locations.conf (which holds the / and /assets/
# locations, the Content-Security-Policy and the cache headers).
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs,
}:
let
  fs = lib.fileset;
  root = ../frontend;
  manifest = lib.importJSON (root + "/package.json");
in
buildNpmPackage {
  pname = "collabry-web";
  inherit (manifest) version;
  inherit nodejs;

  # Only what the build reads: not node_modules/ or dist/ of a developer's checkout.
  src = fs.toSource {
    inherit root;
    fileset = fs.unions [
      (root + "/package.json")
      (root + "/package-lock.json")
      (root + "/.npmrc")
      (root + "/index.html")
      (root + "/vite.config.ts")
      (root + "/tsconfig.json")
      (root + "/src")
      (root + "/public")
      (root + "/test")
    ];
  };

  npmDeps = importNpmLock { npmRoot = root; };
  npmConfigHook = importNpmLock.npmConfigHook;

  # `npm run build`: type check (tsc --noEmit), then vite build into dist/.
  npmBuildScript = "build";

  # The client's own logic (token refresh, SSE parsing and resume) is unit-tested at build time.
  doCheck = true;
  checkPhase = ''
    runHook preCheck
    npx --no-install vitest run --reporter=dot
    runHook postCheck
  '';

  installPhase = ''
    runHook preInstall
    test -f dist/index.html
    cp -r dist $out
    runHook postInstall
  '';

  meta = {
    description = "Collabry web front end (static files served by nginx)";
    license = lib.licenses.agpl3Plus;
    platforms = lib.platforms.linux;
  };
}
