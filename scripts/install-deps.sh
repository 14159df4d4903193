#!/bin/sh
# Installs the Debian 12 packages modes needs to build and test. Run as root (or with sudo).
# Packages already present are not reinstalled, so this is quick on a prepared machine.
set -eu
PKGS="build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev libpcre2-dev libutf8proc-dev
      libpng-dev libjpeg-dev libwebp-dev libmicrohttpd-dev curl valgrind python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
