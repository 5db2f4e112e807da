#!/bin/sh
# Make a throwaway PKI for the TLS tests: a cluster CA, a server and a client
# certificate it signed, and a second, unrelated CA with its own leaf (the
# "wrong certificate" that must be refused).  ECDSA P-256, 100-year validity.
set -eu
out=$1
mkdir -p "$out"
cd "$out"
days=36500
mk_ca() { # name cn
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1.key" -out "$1.pem" -days $days -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mk_leaf() { # name cn ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
    -out "$1.pem" -days $days -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
mk_ca ca "kiseki test cluster CA"
mk_leaf server node1 ca
mk_leaf client client1 ca
mk_ca rogue-ca "rogue CA"
mk_leaf rogue rogue1 rogue-ca
chmod 600 ./*.key
