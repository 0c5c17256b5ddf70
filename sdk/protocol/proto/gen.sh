#!/usr/bin/env bash
# Regenerates sdk/protocol/proto/gen/ (TypeScript for the CRE protobuf definitions) from the .proto files in
# sdk/protocol/proto/. The generated files are committed, so neither the build nor the tests run this.
#
# buf and protoc-gen-es come from the npm registry (the buf binary ships in npm platform packages), installed into
# a cache directory outside the project so that they are not project dependencies. protoc-gen-es must match the
# @bufbuild/protobuf runtime version in package.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
runtime="$(node -p "require('$root/node_modules/@bufbuild/protobuf/package.json').version")"
tools="${CWH_PROTO_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cwh-proto-tools}"
if [[ ! -x "$tools/node_modules/.bin/buf" || ! -x "$tools/node_modules/.bin/protoc-gen-es" ]] ||
  [[ "$(node -p "require('$tools/node_modules/@bufbuild/protoc-gen-es/package.json').version")" != "$runtime" ]]; then
  mkdir -p "$tools"
  (cd "$tools" && [[ -f package.json ]] || echo '{"private":true}' >"$tools/package.json")
  npm install --prefix "$tools" --no-audit --no-fund --no-save "@bufbuild/buf@1.75.0" "@bufbuild/protoc-gen-es@$runtime"
fi
cd "$root/sdk/protocol/proto"
PATH="$tools/node_modules/.bin:$PATH" buf generate
cd "$root"
node node_modules/@biomejs/biome/bin/biome format --write sdk/protocol/proto/gen >/dev/null
echo "gen-proto: regenerated sdk/protocol/proto/gen with protoc-gen-es $runtime"
