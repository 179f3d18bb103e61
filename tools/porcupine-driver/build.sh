#!/usr/bin/env bash
# Builds the Porcupine driver offline: build.sh PORCUPINE_SRC OUT_BINARY
#
# PORCUPINE_SRC is a checkout of https://github.com/anishathalye/porcupine (MIT; not vendored
# here). The go.mod made in a temporary directory points at it with a replace directive, so no
# module proxy or network is needed. Needs Go (Debian: apt-get install golang-go).
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
[ -f "$src/checker.go" ] || { echo "not a Porcupine checkout: $src" >&2; exit 1; }
command -v go >/dev/null || { echo "go not found (Debian: apt-get install golang-go)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp "$here/main.go" "$build/"
cat >"$build/go.mod" <<MOD
module porcupine-driver

go 1.16

require github.com/anishathalye/porcupine v0.0.0

replace github.com/anishathalye/porcupine => $src
MOD
case $out in /*) ;; *) out=$PWD/$out ;; esac
(cd "$build" && GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local go build -o "$out" .)
echo "built $out from $src ($(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo 'unknown commit'))"
