#!/usr/bin/env bash
# Build (or reuse) the QEMU guest used by the interop tests: a Debian kernel plus an initramfs
# holding busybox, pppd, the rp-pppoe tools and the kernel's PPP/PPPoE/virtio modules.
#
# Usage: interop/build-guest.sh bookworm|trixie
#
# Everything comes from Debian packages fetched with `apt-get download` through a private apt
# state directory (target/interop/apt-<suite>/), so the host's apt configuration is untouched.
# The image lands in target/interop/images/<suite>-<key>/ where <key> hashes the package
# versions and this script + the guest /init; an existing complete image is reused.
# On success the last line printed on stdout is the image directory.
#
# Needs on the host: apt-get, dpkg, depmod (kmod), readelf (binutils), cpio, gzip, xz, zstd,
# sha256sum, flock. Env: PPP_INTEROP_MIRROR (default http://deb.debian.org/debian),
# PPP_INTEROP_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
# CARGO_TARGET_DIR (default <workspace>/target).
set -euo pipefail

suite="${1:-}"
case "$suite" in
bookworm | trixie) ;;
*)
    echo "usage: $0 bookworm|trixie" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$workspace/target}"
base="$target/interop"
aptdir="$base/apt-$suite"
mirror="${PPP_INTEROP_MIRROR:-http://deb.debian.org/debian}"
secmirror="${PPP_INTEROP_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "build-guest[$suite]: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for tool in apt-get apt-cache dpkg-deb depmod readelf cpio gzip xz zstd sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || die "missing host tool: $tool"
done
[ -r "$keyring" ] || die "missing $keyring (package debian-archive-keyring)"

mkdir -p "$aptdir"/{state/lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,debs} "$base/images"

# One build per suite at a time (parallel test binaries may call us together).
exec 9>"$aptdir/lock"
flock 9

: >"$aptdir/state/status"
cat >"$aptdir/etc/sources.list" <<EOF
deb [signed-by=$keyring] $mirror $suite main
deb [signed-by=$keyring] $mirror $suite-updates main
deb [signed-by=$keyring] $secmirror $suite-security main
EOF

apt_opts=(
    -o "Dir::State=$aptdir/state"
    -o "Dir::State::status=$aptdir/state/status"
    -o "Dir::Cache=$aptdir/cache"
    -o "Dir::Etc::SourceList=$aptdir/etc/sources.list"
    -o "Dir::Etc::SourceParts=$aptdir/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$aptdir/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$aptdir/etc/preferences.d"
    -o "Dir::Etc::Parts=$aptdir/etc/apt.conf.d"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures::=amd64"
    -o "Acquire::Languages=none"
    -o "Debug::NoLocking=1"
)

# Refresh the package lists at most once an hour (they are a few MB and take seconds).
stamp="$aptdir/state/updated"
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
    log "apt-get update (private state in $aptdir)"
    if apt-get "${apt_opts[@]}" -q update >"$aptdir/update.log" 2>&1; then
        touch "$stamp"
    elif [ -e "$stamp" ]; then
        log "apt-get update failed, using the older lists (see $aptdir/update.log)"
    else
        cat "$aptdir/update.log" >&2
        die "apt-get update failed"
    fi
fi

kpkg="$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
[ -n "$kpkg" ] || die "cannot resolve the kernel package behind linux-image-amd64"

# The programs we want and, recursively, the libraries they depend on (only lib* packages and
# the explicit ones are downloaded; the ELF closure below picks what the image needs).
# openssl-provider-legacy only exists from trixie on (bookworm ships legacy.so in libssl3).
# iperf3 measures the kernel and TUN data paths of this stack's programs inside the guest.
wanted=("$kpkg" busybox-static ppp pppoe iperf3 openssl-provider-legacy)
mapfile -t deps < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances ppp pppoe iperf3 2>/dev/null |
    grep -E '^(lib[a-z0-9.+-]+|zlib1g)$' | sort -u)
# One apt-cache call for every candidate version ("name=version"; virtual packages drop out).
mapfile -t pkgs < <(apt-cache "${apt_opts[@]}" policy "${wanted[@]}" "${deps[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ {name = substr($0, 1, length($0) - 1)}
         /^  Candidate:/ && $2 != "(none)" {print name "=" $2}' | sort -u)

key="$({
    printf '%s\n' "${pkgs[@]}"
    sha256sum "$here/build-guest.sh" "$here/guest/init" "$here/guest/ppptest-run" | cut -d' ' -f1
} | sha256sum | cut -c1-12)"
out="$base/images/$suite-$key"
if [ -f "$out/complete" ]; then
    log "reusing $out"
    echo "$suite-$key" >"$base/images/$suite.current"
    echo "$out"
    exit 0
fi

started=$(date +%s)
log "building $out from ${#pkgs[@]} packages (kernel $kpkg)"
(cd "$aptdir/debs" && apt-get "${apt_opts[@]}" -q download "${pkgs[@]}" >"$aptdir/download.log" 2>&1) ||
    {
        cat "$aptdir/download.log" >&2
        die "apt-get download failed"
    }

work="$base/build-$suite"
rm -rf "$work" "$out.tmp"
trap 'rm -rf "$work" "$out.tmp"' EXIT
mkdir -p "$work/unpacked" "$out.tmp"
for p in "${pkgs[@]}"; do
    name="${p%%=*}"
    ver="${p#*=}"
    ver="${ver//:/%3a}"
    deb="$(ls "$aptdir/debs/${name}_${ver}_"*.deb 2>/dev/null | head -n1)"
    [ -n "$deb" ] || die "downloaded .deb for $p not found"
    dpkg-deb -x "$deb" "$work/unpacked"
done
u="$work/unpacked"

# ---- kernel and modules ------------------------------------------------------------------
kver="${kpkg#linux-image-}"
vmlinuz="$(ls "$u"/boot/vmlinuz-"$kver" 2>/dev/null || true)"
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-$kver in $kpkg"
moddir=""
for d in "$u/lib/modules/$kver" "$u/usr/lib/modules/$kver"; do
    [ -d "$d" ] && moddir="$d"
done
[ -n "$moddir" ] || die "no modules directory for $kver"
mods="$work/mods"
mkdir -p "$mods/lib/modules"
ln -s "$moddir" "$mods/lib/modules/$kver"
depmod -b "$mods" "$kver"

# Wanted modules, by name; the optional ones may be built in or absent in some kernels.
required=(slhc ppp_generic ppp_async ppp_synctty pppox pppoe ppp_deflate ppp_mppe bsd_comp
    virtio virtio_ring virtio_pci virtio_net e1000 qemu_fw_cfg tun)
# veth: a pair of interfaces between two network namespaces of one guest (kernel data path
# scenarios).
optional=(libarc4 failover net_failover virtio_pci_legacy_dev virtio_pci_modern_dev veth)

# Emits module paths (relative to the modules dir) for NAME, dependencies first.
declare -A seen=()
order=()
add_module() {
    local name="${1//-/_}" line path deps d
    line="$(awk -v n="$name" -F: '{
        b = $1; sub(/.*\//, "", b); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", b); gsub(/-/, "_", b);
        if (b == n) { print; exit }
    }' "$moddir/modules.dep")"
    if [ -z "$line" ]; then
        return 1
    fi
    path="${line%%:*}"
    [ -n "${seen[$path]:-}" ] && return 0
    seen[$path]=1
    deps="${line#*:}"
    for d in $deps; do
        d="${d##*/}"
        d="${d%%.ko*}"
        add_module "$d" || die "module dependency $d of $name not found"
    done
    order+=("$path")
}
is_builtin() { grep -Eq "/${1//_/[_-]}\.ko\$" "$moddir/modules.builtin" 2>/dev/null; }
for m in "${required[@]}"; do
    add_module "$m" || is_builtin "$m" || die "kernel module $m neither in modules.dep nor built in"
done
for m in "${optional[@]}"; do add_module "$m" || true; done

root="$work/root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc/ppp/peers,modules,dev,proc,sys,tmp,run,var/run,var/log,log,root}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
: >"$root/modules/load.list"
for path in "${order[@]}"; do
    b="${path##*/}"
    case "$b" in
    *.ko.xz) xz -dc "$moddir/$path" >"$root/modules/${b%.xz}" ;;
    *.ko.zst) zstd -qdc "$moddir/$path" >"$root/modules/${b%.zst}" ;;
    *.ko.gz) gzip -dc "$moddir/$path" >"$root/modules/${b%.gz}" ;;
    *) cp "$moddir/$path" "$root/modules/$b" ;;
    esac
    b="${b%.xz}"
    b="${b%.zst}"
    echo "${b%.gz}" >>"$root/modules/load.list"
done
cp "$vmlinuz" "$out.tmp/vmlinuz"

# ---- programs and their shared libraries ---------------------------------------------------
# Finds FILE (a path like usr/sbin/pppd or bin/foo) in the unpacked tree, merged-/usr aware.
find_unpacked() {
    local rel="${1#/}"
    rel="${rel#usr/}"
    for c in "$u/usr/$rel" "$u/$rel"; do
        [ -e "$c" ] && {
            echo "$c"
            return 0
        }
    done
    return 1
}
# Copies unpacked FILE (absolute path under $u) to the same place under usr/ in the image.
install_file() {
    local src="$1" rel
    rel="${src#"$u"/}"
    rel="${rel#usr/}"
    mkdir -p "$root/usr/$(dirname "$rel")"
    cp -L "$src" "$root/usr/$rel"
}
libdirs=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 usr/lib64 lib usr/lib)
declare -A have_lib=()
resolve_libs() {
    local elf="$1" need d found
    for need in $(readelf -d "$elf" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -n "${have_lib[$need]:-}" ] && continue
        found=""
        for d in "${libdirs[@]}"; do
            if [ -e "$u/$d/$need" ]; then
                found="$u/$d/$need"
                break
            fi
        done
        [ -n "$found" ] || die "shared library $need (needed by ${elf#"$u"/}) not in the unpacked packages"
        have_lib[$need]=1
        mkdir -p "$root/usr/lib/x86_64-linux-gnu"
        cp -L "$found" "$root/usr/lib/x86_64-linux-gnu/$need"
        resolve_libs "$found"
    done
}

bb="$(find_unpacked bin/busybox)" || die "busybox not unpacked"
cp "$bb" "$root/usr/bin/busybox"
for applet in $("$bb" --list-full 2>/dev/null); do
    applet="${applet#usr/}"
    [ -e "$root/usr/$applet" ] || ln -s /usr/bin/busybox "$root/usr/$applet"
done

programs=(usr/sbin/pppd usr/sbin/chat usr/sbin/pppoe-server usr/sbin/pppoe usr/sbin/pppoe-discovery
    usr/sbin/pppoe-relay usr/sbin/pppoe-sniff usr/sbin/pppdump usr/sbin/pppstats usr/bin/iperf3)
for prog in "${programs[@]}"; do
    src="$(find_unpacked "$prog")" || {
        case "$prog" in
        */pppd | */chat | */pppoe-server | */pppoe | */pppoe-discovery | */iperf3) die "$prog not found" ;;
        *) continue ;;
        esac
    }
    rm -f "$root/$prog"
    install_file "$src"
    resolve_libs "$src"
done
# pppd plugins (rp-pppoe.so / pppoe.so, ...) and the OpenSSL provider modules (pppd 2.5 needs
# the legacy provider for MD4/DES).
for dir in lib/pppd usr/lib/pppd lib/x86_64-linux-gnu/ossl-modules usr/lib/x86_64-linux-gnu/ossl-modules \
    lib/x86_64-linux-gnu/pppd usr/lib/x86_64-linux-gnu/pppd; do
    [ -d "$u/$dir" ] || continue
    while IFS= read -r -d '' so; do
        install_file "$so"
        resolve_libs "$so"
    done < <(find "$u/$dir" \( -type f -o -type l \) -name '*.so*' -print0)
done
# The dynamic loader at its ABI path.
ld="$(find_unpacked lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)" || die "no dynamic loader"
cp -L "$ld" "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/usr/lib64/ld-linux-x86-64.so.2"
ldd_check=$(find "$root/usr/lib" -path '*ossl-modules/legacy.so' | head -n1)
[ "$suite" = bookworm ] || [ -n "$ldd_check" ] || die "OpenSSL legacy provider not found"

# ---- configuration ----------------------------------------------------------------------
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'passwd: files
group: files
hosts: files' >"$root/etc/nsswitch.conf"
echo '127.0.0.1 localhost guest' >"$root/etc/hosts"
echo guest >"$root/etc/hostname"
: >"$root/etc/ppp/options"
for f in pap-secrets chap-secrets; do
    printf '# %s: scenario scripts overwrite this file at run time\n# client server secret addresses\n' "$f" \
        >"$root/etc/ppp/$f"
    chmod 600 "$root/etc/ppp/$f"
done
printf '# options for the pppd that pppoe-server starts; scenario scripts overwrite this file\nnoauth\n' \
    >"$root/etc/ppp/pppoe-server-options"
mkdir -p "$root/usr/lib/ssl"
cat >"$root/usr/lib/ssl/openssl.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
legacy = legacy_sect
[default_sect]
activate = 1
[legacy_sect]
activate = 1
EOF
pppd_version="$(ls "$u/usr/lib/pppd" 2>/dev/null | head -n1 || true)"
{
    echo "suite=$suite"
    echo "kernel=$kver"
    echo "pppd=${pppd_version:-unknown}"
    printf 'package=%s\n' "${pkgs[@]}"
} >"$root/etc/ppptest-image"
cp "$root/etc/ppptest-image" "$out.tmp/manifest"
install -m 0755 "$here/guest/init" "$root/init"
install -m 0755 "$here/guest/ppptest-run" "$root/usr/bin/ppptest-run"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
    gzip -6 >"$out.tmp/initrd.gz"
echo "$kver" >"$out.tmp/kernel-version"
touch "$out.tmp/complete"
rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$work"
echo "$suite-$key" >"$base/images/$suite.current"
# Keep only this image and the .debs it was built from.
for old in "$base/images/$suite"-*; do
    [ "$old" = "$out" ] || rm -rf "$old"
done
keep="$(printf '%s\n' "${pkgs[@]}" | sed 's/:/%3a/g; s/=/_/')"
for deb in "$aptdir/debs"/*.deb; do
    b="${deb##*/}"
    grep -qxF "${b%_*.deb}" <<<"$keep" || rm -f "$deb"
done
log "built $out in $(($(date +%s) - started)) s (initrd $(du -k "$out/initrd.gz" | cut -f1) KiB)"
echo "$out"
