#!/usr/bin/env bash
# Install what the scan page and its browser tests need, idempotently:
#   1. Debian's Chromium at /usr/bin/chromium (the browser tests drive it; never
#      `playwright install`, which downloads a browser build),
#   2. the npm packages pinned in web/package-lock.json (`npm ci`),
#   3. MediaPipe's face detector (js, wasm, model) copied into
#      src/pulseloop/server/static/vendor/mediapipe/, which the server serves itself.
# Needs: apt-get (as root, or passwordless sudo) when Chromium is missing; node + npm.
# Set SKIP_CHROMIUM=1 to skip step 1 (e.g. a server that never runs the browser tests).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
VENDOR="$ROOT/src/pulseloop/server/static/vendor/mediapipe"
PACKAGE="$WEB/node_modules/@mediapipe/face_detection"
FILES=(
  face_detection.js
  face_detection_full.binarypb
  face_detection_full_range.tflite
  face_detection_full_range_sparse.tflite
  face_detection_short.binarypb
  face_detection_short_range.tflite
  face_detection_solution_simd_wasm_bin.data
  face_detection_solution_simd_wasm_bin.js
  face_detection_solution_simd_wasm_bin.wasm
  face_detection_solution_wasm_bin.js
  face_detection_solution_wasm_bin.wasm
)

log() { printf 'install-web-deps: %s\n' "$*" >&2; }

if [[ "${SKIP_CHROMIUM:-0}" != 1 && ! -x /usr/bin/chromium ]]; then
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo -n"; fi
  log "installing Debian chromium"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi

command -v npm >/dev/null || { log "npm is missing: install Node.js (with npm) first"; exit 1; }

# npm ci wipes and reinstalls node_modules; skip it when the lock file has not changed.
STAMP="$WEB/node_modules/.pulseloop-lock.sha256"
LOCK_SUM="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$LOCK_SUM" || ! -d "$PACKAGE" ]]; then
  log "npm ci in web/"
  (cd "$WEB" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$LOCK_SUM" >"$STAMP"
fi

mkdir -p "$VENDOR"
for file in "${FILES[@]}"; do
  if [[ ! -f "$PACKAGE/$file" ]]; then
    log "missing $PACKAGE/$file: is web/package-lock.json pinned to the expected release?"
    exit 1
  fi
  cmp -s "$PACKAGE/$file" "$VENDOR/$file" || cp "$PACKAGE/$file" "$VENDOR/$file"
done
log "MediaPipe face detection $(node -p "require('$PACKAGE/package.json').version") in $VENDOR"
