# Small pure functions of the NixOS module, builtins only, so that tests/static/test_nix.py can
# evaluate them with `nix-instantiate --eval` (no nixpkgs needed).
rec {
  # http://127.0.0.1:8200/v1, mongodb://localhost:27017, redis://[::1]:6379/0 ...
  isLoopbackUrl =
    url: builtins.match "[a-z+]+://(127[.][0-9.]+|localhost|[[]::1[]])(:[0-9]+)?(/.*)?" url != null;

  isLoopbackAddress = a: builtins.elem a [
    "127.0.0.1"
    "::1"
    "localhost"
  ];

  # A setting as the text of an environment variable: booleans true/false, lists comma-separated.
  toEnvValue =
    v:
    if builtins.isBool v then
      (if v then "true" else "false")
    else if builtins.isList v then
      builtins.concatStringsSep "," (map toString v)
    else
      toString v;

  # One KEY="value" line of a systemd EnvironmentFile=: inside double quotes, backslash escapes
  # `\`, `"`, `$` and a backtick.
  quoteEnv =
    v:
    "\""
    + builtins.replaceStrings [ "\\" "\"" "$" "`" ] [ "\\\\" "\\\"" "\\$" "\\`" ] v
    + "\"";

  renderEnvFile =
    attrs:
    builtins.concatStringsSep "" (
      map (k: "${k}=${quoteEnv (toEnvValue attrs.${k})}\n") (builtins.attrNames attrs)
    );
}
