#!/usr/bin/env bash
# Bench 1's baseline: the renders of `immich-firstboot run --skip-stack`, done the plain way an admin
# would script them (secret, .env, compose file, daemon.json, ECDSA P-256 cert with SANs, nginx site,
# credentials), into the root given as $1. No locking, journal, atomic writes or checks: the floor.
set -euo pipefail
root=$1
repo=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$root/opt/immich/library" "$root/opt/immich/postgres" "$root/etc/docker" \
  "$root/etc/immich-firstboot/tls" "$root/etc/nginx/sites-available" "$root/etc/nginx/sites-enabled" \
  "$root/root" "$root/var/lib/immich-firstboot" "$root/var/www/immich-acme"
chmod 0700 "$root/opt/immich/postgres"

# Addresses of this VM (not Docker's bridge), and the 32-character A-Za-z0-9 secret.
read -r -a addrs <<<"$(hostname -I | tr ' ' '\n' | grep -v '^172\.17\.' | tr '\n' ' ')"
secret=$(openssl rand -base64 96 | tr -dc 'A-Za-z0-9' | head -c 32)

(umask 027 && cat >"$root/opt/immich/.env" <<EOF
# Immich's environment, written at first boot.
UPLOAD_LOCATION=/opt/immich/library
DB_DATA_LOCATION=/opt/immich/postgres
TZ=Etc/UTC
IMMICH_VERSION=v3.2.4
DB_PASSWORD=$secret
DB_USERNAME=postgres
DB_DATABASE_NAME=immich
EOF
)
cp "$repo/compose/docker-compose.yml" "$root/opt/immich/docker-compose.yml"
cat >"$root/etc/docker/daemon.json" <<EOF
{
  "log-driver": "json-file",
  "log-opts": { "max-size": "50m", "max-file": "5" }
}
EOF

# The certificate: ECDSA P-256, every address as an IP SAN, 397 days.
san=""
for a in "${addrs[@]}"; do san+="${san:+,}IP:$a"; done
tls="$root/etc/immich-firstboot/tls"
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 397 -noenc \
  -subj "/CN=${addrs[0]}/O=Immich (self-signed at first boot)" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" -addext "subjectAltName=${san:-DNS:localhost}" \
  -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null)
chmod 0644 "$tls/cert.pem"
fingerprint=$(openssl x509 -in "$tls/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')

names=""
for a in "${addrs[@]}"; do names+="${names:+ }$a"; done
cat >"$root/etc/nginx/sites-available/immich" <<EOF
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;
ssl_session_timeout 1d;
ssl_session_cache shared:MozSSL:10m;
ssl_session_tickets off;

server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name $names;
    add_header Strict-Transport-Security "max-age=63072000" always;
    location ^~ /.well-known/acme-challenge/ {
        root /var/www/immich-acme;
        default_type text/plain;
        try_files \$uri =404;
    }
    location / {
        return 301 https://\$host\$request_uri;
    }
}

server {
    listen 443 ssl http2 default_server;
    listen [::]:443 ssl http2 default_server;
    server_name $names;
    ssl_certificate /etc/immich-firstboot/tls/cert.pem;
    ssl_certificate_key /etc/immich-firstboot/tls/key.pem;
    add_header Strict-Transport-Security "max-age=63072000" always;
    add_header X-Content-Type-Options "nosniff" always;
    add_header Referrer-Policy "same-origin" always;
    add_header X-Frame-Options "SAMEORIGIN" always;
    client_max_body_size 50000M;
    client_body_buffer_size 1024k;
    proxy_request_buffering off;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    send_timeout 600s;
    location / {
        proxy_pass http://127.0.0.1:2283;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection "upgrade";
    }
}
EOF
ln -sf ../sites-available/immich "$root/etc/nginx/sites-enabled/immich"

(umask 077 && cat >"$root/root/immich-credentials.txt" <<EOF
Immich on this VM
  https://${addrs[0]}/
  Certificate SHA-256 fingerprint: $fingerprint
  The first person to sign up in the web UI becomes the admin.
Database
  User: postgres    Database: immich
  Password: $secret
EOF
)
touch "$root/var/lib/immich-firstboot/done"
