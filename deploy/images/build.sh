#!/usr/bin/env bash
# Builds the images of deploy/images from this checkout: static binaries
# (glibc, `+crt-static`: no musl target is needed, and glibc >= 2.34 carries
# DNS and /etc/hosts lookups inside libc, so a FROM scratch image resolves
# names), then one `build` per image with podman or docker.
#
#   deploy/images/build.sh [--engine podman|docker] [--tag TAG] [--registry REG] [IMAGE...]
#
# IMAGE: testkube-init, testkube-agent (default: those whose binary crate is
# in this workspace). Images are tagged REG/IMAGE:TAG (default
# ghcr.io/testkube-rs/IMAGE:<workspace version>, the names the agent's
# install and `testkube run --on kubernetes` use).
set -euo pipefail
cd "$(dirname "$0")/../.."

engine="$(command -v podman || command -v docker || true)"
tag="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
registry="ghcr.io/testkube-rs"
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) images+=("$1"); shift ;;
  esac
done
if [ ${#images[@]} -eq 0 ]; then
  for image in testkube-init testkube-agent; do
    [ -d "bins/$image" ] && images+=("$image")
  done
fi
[ -n "$engine" ] || { echo "error: neither podman nor docker is installed; pass --engine" >&2; exit 2; }
certs=/etc/ssl/certs/ca-certificates.crt
[ -f "$certs" ] || { echo "error: $certs is missing (install ca-certificates)" >&2; exit 2; }

target="$(rustc -vV | sed -n 's/^host: //p')"
packages=()
for image in "${images[@]}"; do
  [ -f "deploy/images/$image.Dockerfile" ] || { echo "error: no deploy/images/$image.Dockerfile" >&2; exit 2; }
  [ -d "bins/$image" ] || { echo "error: bins/$image is not in this checkout" >&2; exit 2; }
  packages+=(-p "$image")
done
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros,
# which must stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --locked --release --target "$target" "${packages[@]}"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
for image in "${images[@]}"; do
  mkdir -p "$context/$image"
  cp "${CARGO_TARGET_DIR:-target}/$target/release/$image" "$certs" "$context/$image/"
  "$engine" build -f "deploy/images/$image.Dockerfile" -t "$registry/$image:$tag" "$context/$image"
done
