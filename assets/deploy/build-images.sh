#!/usr/bin/env bash
# Build the fleet's two images from this checkout, with nothing pulled from a registry:
#
#   graflow:<tag>        the release `graflow` binary, the shared libraries it loads and
#                        busybox (the `sh` that Shell tasks run, and `wget` for the health
#                        check); user 10001; default command `graflow worker`.
#   graflow-redis:<tag>  Debian's redis-server and redis-cli with their libraries; user 999;
#                        data (the AOF) in /data.
#
# Each image is `FROM scratch` over a root filesystem this script assembles from the host:
# the host must be Debian-like (x86-64 or arm64) with `redis-server` and `busybox-static`
# installed, a Rust toolchain, and a Docker engine.
#
#   assets/deploy/build-images.sh [--tag TAG] [--debug] [--no-cargo] [--binary PATH] [--no-cache]
#
#   --tag TAG      image tag (default: latest)
#   --debug        build and use the debug binary (quick to build: what CI tests; a deployment
#                  wants the default, release)
#   --no-cargo     do not run `cargo build`; use the binary already built
#   --binary PATH  put this graflow binary in the image instead of cargo's
#   --no-cache     build the images from nothing (Docker's layer cache unused)
#
# Prints one line per image with its size and build time, and a JSON line for the benchmark
# record. Each layer is a tar with sorted entries, fixed owners and every time set to the last
# commit's, so two builds of one commit (and one binary) give identical layers.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
tag=latest
cargo_build=1
profile=release
binary=""
cache=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
        --debug) profile=debug; shift ;;
        --no-cache) cache=(--no-cache); shift ;;
        --no-cargo) cargo_build=0; shift ;;
        --binary) binary="${2:?--binary needs a path}"; cargo_build=0; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "build-images.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

for tool in docker ldd; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build-images.sh: '$tool' is needed" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "build-images.sh: /bin/busybox is needed (Debian: busybox-static)" >&2; exit 2; }
redis_bin="$(command -v redis-server || true)"
[ -n "$redis_bin" ] || { echo "build-images.sh: redis-server is needed (Debian: redis-server)" >&2; exit 2; }

epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

now_ms() { date +%s%3N; }

# Copy an executable and every shared library it loads (as `ldd` resolves them) into $1.
copy_with_libs() {
    local root="$1" src="$2" dest="$3"
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$src" "$root$dest"
    ldd "$src" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
}

# `docker build`, quiet unless it fails.
build() {
    local log
    if ! log="$(docker build "${cache[@]}" -q -t "$1" "$2" 2>&1)"; then
        echo "$log" >&2
        exit 1
    fi
}

# Pack `$1/rootfs` as `$1/rootfs.tar`: owned by root, except `$2` (and what it holds) owned by
# `$3` (uid:gid; its entries come again at the end, and the last one wins); sorted, every time
# set to the last commit's, so two builds of one commit (and one binary) give the same layer.
pack() {
    local ctx="$1" own="$2" uid="${3%%:*}" gid="${3##*:}"
    local opts=(--sort=name "--mtime=@$epoch" --numeric-owner --format=gnu)
    tar -C "$ctx/rootfs" "${opts[@]}" --owner=0 --group=0 -cf "$ctx/rootfs.tar" .
    tar -C "$ctx/rootfs" "${opts[@]}" --owner="$uid" --group="$gid" -rf "$ctx/rootfs.tar" "./$own"
    rm -rf "${ctx:?}/rootfs"
}

report() { # name started_ms
    local size ms
    size="$(docker image inspect -f '{{.Size}}' "$1")"
    ms=$(( $(now_ms) - $2 ))
    printf '%-24s %6.1f MB  built in %5.1f s\n' "$1" "$(echo "$size" | awk '{print $1/1000000}')" "$(echo "$ms" | awk '{print $1/1000}')"
    printf '{"workload":"image_build","image":"%s","size_bytes":%s,"seconds":%s}\n' "$1" "$size" "$(echo "$ms" | awk '{print $1/1000}')"
}

# --- graflow ---------------------------------------------------------------------------------
started=$(now_ms)
if [ -z "$binary" ]; then
    target="${CARGO_TARGET_DIR:-$repo/target}"
    if [ "$cargo_build" = 1 ]; then
        if [ "$profile" = release ]; then
            (cd "$repo" && cargo build --release --locked -p graflow --bin graflow)
        else
            (cd "$repo" && cargo build --locked -p graflow --bin graflow)
        fi
    fi
    binary="$target/$profile/graflow"
fi
[ -x "$binary" ] || { echo "build-images.sh: no graflow binary at '$binary' (build it, or drop --no-cargo)" >&2; exit 2; }
cargo_ms=$(( $(now_ms) - started ))

ctx="$work/graflow"
root="$ctx/rootfs"
mkdir -p "$root"/{bin,etc,tmp,flows,home/graflow/.graflow}
copy_with_libs "$root" "$binary" /usr/local/bin/graflow
if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$root/usr/local/bin/graflow"; fi
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\ngraflow:x:10001:10001:graflow:/home/graflow:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\ngraflow:x:10001:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    GRAFLOW_STATE_DIR=/home/graflow/.graflow \
    NO_COLOR=1
USER 10001:10001
WORKDIR /home/graflow
# 9100: a worker's /metrics and /healthz; 8000: `graflow serve`.
EXPOSE 9100 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9100/healthz"]
ENTRYPOINT ["/usr/local/bin/graflow"]
CMD ["worker", "--metrics-addr", "0.0.0.0:9100"]
EOF
pack "$ctx" home/graflow 10001:10001
build "graflow:$tag" "$ctx"
report "graflow:$tag" "$started"
printf '{"workload":"image_build_cargo","seconds":%s}\n' "$(echo "$cargo_ms" | awk '{print $1/1000}')"

# --- redis -----------------------------------------------------------------------------------
started=$(now_ms)
ctx="$work/redis"
root="$ctx/rootfs"
mkdir -p "$root"/{bin,etc,tmp,data}
copy_with_libs "$root" "$redis_bin" /usr/bin/redis-server
copy_with_libs "$root" "$(command -v redis-cli)" /usr/bin/redis-cli
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nredis:x:999:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/bin:/bin
USER 999:999
WORKDIR /data
VOLUME /data
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["redis-cli", "ping"]
ENTRYPOINT ["/usr/bin/redis-server"]
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes"]
EOF
pack "$ctx" data 999:999
build "graflow-redis:$tag" "$ctx"
report "graflow-redis:$tag" "$started"
