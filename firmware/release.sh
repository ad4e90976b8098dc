#!/usr/bin/env bash
# Builds, signs and catalogs one universal node release (firmware/README.md "Firmware updates").
# Needs ESP-IDF v6 (idf.py, espsecure) in the environment and the release signing key OUTSIDE the
# repository; it cannot run in this project's CI (no ESP-IDF there). Kept simple on purpose.
#
# Usage: firmware/release.sh KEY.pem OUT_DIR ["release notes"]
#   KEY.pem   RSA-3072 private key (espsecure generate-signing-key --version 2 --scheme rsa3072 KEY.pem)
#   OUT_DIR   receives dc_universal_node-<version>.bin (signed) and dc_universal_node-<version>.json
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 KEY.pem OUT_DIR [\"release notes\"]" >&2; exit 2; }
key=$1 out=$2 notes=${3:-}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
proj="$here/universal_node"
[ -f "$key" ] || { echo "no key $key" >&2; exit 1; }
case "$(cd "$(dirname "$key")" && pwd)/" in "$(cd "$here/.." && pwd)/"*)
  echo "refusing a signing key inside the repository: keep it outside the checkout" >&2; exit 1 ;;
esac
command -v idf.py >/dev/null && command -v espsecure >/dev/null ||
  { echo "run inside an ESP-IDF v6 environment (. \$IDF_PATH/export.sh)" >&2; exit 1; }

version=$(sed -n 's/^set(PROJECT_VER "\([0-9]*\.[0-9]*\.[0-9]*\)")/\1/p' "$proj/CMakeLists.txt")
hardware=$(sed -n '/config DCM_HARDWARE/,/default/s/^ *default "\(.*\)"/\1/p' "$proj/main/Kconfig.projbuild")
[ -n "$version" ] && [ -n "$hardware" ] || { echo "cannot read version / hardware" >&2; exit 1; }

(cd "$proj" && idf.py set-target esp32c6 && idf.py build)
mkdir -p "$out"
name="dc_universal_node-$version.bin"
espsecure sign-data --version 2 --keyfile "$key" --output "$out/$name" "$proj/build/dc_universal_node.bin"
espsecure verify-signature --version 2 --keyfile "$key" "$out/$name"
size=$(stat -c %s "$out/$name")
sha=$(sha256sum "$out/$name" | cut -d' ' -f1)
digest_file=$(mktemp)
espsecure digest-sbv2-public-key --keyfile "$key" --output "$digest_file"
keydigest=$(od -An -tx1 -v "$digest_file" | tr -d ' \n')
rm -f "$digest_file"

python3 - "$out/dc_universal_node-$version.json" "$version" "$hardware" "$size" "$sha" \
  "$keydigest" "$notes" "$name" <<'PY'
import json, sys
path, version, hardware, size, sha, keydigest, notes, name = sys.argv[1:]
with open(path, "w") as f:
    json.dump({
        "format": 1,
        "version": version,
        "role": "U",
        "hardware": hardware,
        "size": int(size),
        "sha256": sha,
        "signature": {"scheme": "secure-boot-v2-rsa3072", "public_key_sha256": keydigest},
        "release_notes": notes,
        "image": name,
    }, f, indent=2)
PY
echo "wrote $out/$name ($size bytes) and its manifest"
