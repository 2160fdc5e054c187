#!/usr/bin/env bash
# certs.sh: a cluster CA and node certificates for sluice (openssl).
#
#   deploy/certs.sh DIR NODE_ID[:HOST,HOST...] ...
#
# Makes DIR/ca.pem and DIR/ca.key (kept if they exist), then for each node
# DIR/node<ID>.pem and DIR/node<ID>.key (kept if they exist), issued by that
# CA. Each node certificate names:
#   - its hosts (IP addresses or DNS names; default 127.0.0.1,localhost), which
#     clients check against the address they dial;
#   - URI:sluice:node:<ID>, which peers check: a node presenting another
#     node's certificate is refused on the peer links;
# and allows serverAuth and clientAuth, so one file serves the client
# listeners and both ends of the peer links ([tls] cert, key, ca).
# Keys are P-256 ECDSA; the CA is valid 10 years, node certificates 825 days
# (SLUICE_CERT_DAYS). Keep ca.key off the nodes: it only issues.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DIR NODE_ID[:HOST,HOST...] ..." >&2
    exit 2
fi
dir=$1
shift
days=${SLUICE_CERT_DAYS:-825}
mkdir -p "$dir"
chmod 700 "$dir"
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=sluice cluster CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
fi
for spec in "$@"; do
    id=${spec%%:*}
    hosts=127.0.0.1,localhost
    [ "$spec" != "$id" ] && hosts=${spec#*:}
    case $id in ''|*[!0-9]*) echo "$0: not a node id: $id" >&2; exit 2 ;; esac
    [ -f "$dir/node$id.pem" ] && [ -f "$dir/node$id.key" ] && continue
    san=""
    IFS=, read -ra hs <<<"$hosts"
    for h in "${hs[@]}"; do
        if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
    done
    san+="URI:sluice:node:$id"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' \
        "$san" >"$dir/node$id.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=sluice node $id" \
        -keyout "$dir/node$id.key" -out "$dir/node$id.csr" 2>/dev/null
    openssl x509 -req -in "$dir/node$id.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days "$days" -extfile "$dir/node$id.ext" \
        -out "$dir/node$id.pem" 2>/dev/null
    chmod 600 "$dir/node$id.key"
    rm -f "$dir/node$id.csr" "$dir/node$id.ext"
done
