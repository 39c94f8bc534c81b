#!/usr/bin/env bash
# Bench 1's baseline: the renders of `immich-firstboot run --skip-stack`, done the plain way an admin
# would script them (secret, .env, compose file, daemon.json, ECDSA P-256 cert with SANs, claim token,
# nginx site, credentials), into the root given as $1. No locking, journal, atomic writes or checks: the floor.
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

# The claim token (the site's maps include it, root's alone; the credentials carry the link).
token=$(openssl rand -hex 32)
(umask 077 && mkdir -p "$root/etc/immich-firstboot/nginx" && cat >"$root/etc/immich-firstboot/nginx/claim-token.map" <<EOF
~^$token\$ 1;
EOF
)

# The site: the directives of nginx/immich.conf.hbs as `run` renders it on nginx < 1.25.1 and OpenSSL < 3.5
# (listen ... http2; no post-quantum group), without its comments.
names=""
for a in "${addrs[@]}"; do names+="${names:+ }$a"; done
cat >"$root/etc/nginx/sites-available/immich" <<EOF
geo \$immich_from_loopback {
    default 0;
    127.0.0.0/8 1;
    ::1 1;
}

map "\$immich_from_loopback\$request_method" \$immich_login_limit_key {
    "0POST" \$binary_remote_addr;
    default "";
}
limit_req_zone \$immich_login_limit_key zone=immich_login:10m rate=10r/m;

map \$cookie_immich_claim \$immich_claim_cookie_ok {
    default 0;
    include /etc/immich-firstboot/nginx/claim-token.map;
}
map \$uri \$immich_claim_link {
    default "";
    "~^/claim/(?<immich_claim_token>[0-9a-f]{64})\$" \$immich_claim_token;
}
map \$immich_claim_link \$immich_claim_link_ok {
    default 0;
    include /etc/immich-firstboot/nginx/claim-token.map;
}
map "\$immich_from_loopback\$immich_claim_cookie_ok" \$immich_claim_allowed {
    default 0;
    ~1 1;
}
map \$http_accept \$immich_claim_refusal {
    default /.immich-firstboot/claim-refused.json;
    ~*text/html /.immich-firstboot/claim-refused.html;
}
map \$http_accept \$immich_claim_link_refusal {
    default /.immich-firstboot/claim-link-refused.json;
    ~*text/html /.immich-firstboot/claim-link-refused.html;
}
map \$immich_claim_link_ok \$immich_claim_set_cookie {
    default "";
    1 "immich_claim=\$immich_claim_link; Path=/api/auth/admin-sign-up; Secure; HttpOnly; SameSite=Strict; Max-Age=86400";
}

server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name $names;
    server_tokens off;

    add_header X-Content-Type-Options "nosniff" always;
    add_header Referrer-Policy "same-origin" always;
    add_header X-Frame-Options "SAMEORIGIN" always;
    add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()" always;

    location ^~ /.well-known/acme-challenge/ {
        root /var/www/immich-acme;
        default_type text/plain;
        try_files \$uri =404;
    }

    location / {
        return 308 https://\$host\$request_uri;
    }

    location ^~ /claim/ {
        access_log off;
        return 308 https://\$host\$request_uri;
    }
}

server {
    listen 443 ssl http2 default_server;
    listen [::]:443 ssl http2 default_server;
    server_name $names;

    ssl_certificate /etc/immich-firstboot/tls/cert.pem;
    ssl_certificate_key /etc/immich-firstboot/tls/key.pem;

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    ssl_session_timeout 1d;
    ssl_session_cache shared:MozSSL:10m;
    ssl_session_tickets off;
    server_tokens off;

    add_header Strict-Transport-Security "max-age=63072000" always;
    add_header X-Content-Type-Options "nosniff" always;
    add_header Referrer-Policy "same-origin" always;
    add_header X-Frame-Options "SAMEORIGIN" always;
    add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()" always;
    add_header Set-Cookie \$immich_claim_set_cookie always;

    client_max_body_size 50000M;
    proxy_request_buffering off;
    client_body_buffer_size 8m;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    send_timeout 600s;

    proxy_http_version 1.1;
    proxy_set_header Host \$host;
    proxy_set_header X-Real-IP \$remote_addr;
    proxy_set_header X-Forwarded-For \$remote_addr;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header Upgrade \$http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_redirect off;

    location / {
        proxy_pass http://127.0.0.1:2283;
    }

    location ~* ^/api/auth/login/*\$ {
        limit_req zone=immich_login burst=9 nodelay;
        limit_req_status 429;
        limit_req_log_level warn;
        error_page 429 @immich_login_limited;
        proxy_pass http://127.0.0.1:2283;
    }

    location @immich_login_limited {
        default_type application/json;
        return 429 '{"message":"Too many login attempts from this address, try again in a minute","error":"Too Many Requests","statusCode":429}';
    }

    location ~* ^/api/auth/admin-sign-up/*\$ {
        if (\$immich_claim_allowed = 0) {
            rewrite ^ \$immich_claim_refusal last;
        }
        proxy_pass http://127.0.0.1:2283;
    }
    location ^~ /claim/ {
        access_log off;
        if (\$immich_claim_link_ok = 0) {
            rewrite ^ \$immich_claim_link_refusal last;
        }
        absolute_redirect off;
        return 303 /auth/register;
    }
    location = /.immich-firstboot/claim-refused.json {
        internal;
        default_type application/json;
        return 403 '{"message":"Creating the first admin needs the claim link: open the claim link in /root/immich-credentials.txt on this VM","error":"Forbidden","statusCode":403}';
    }
    location = /.immich-firstboot/claim-refused.html {
        internal;
        default_type text/html;
        return 403 '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Claim this Immich first</title></head><body><h1>Claim this Immich first</h1><p>Only the owner of this VM can create its first admin account: open the claim link in <code>/root/immich-credentials.txt</code> on this VM (for example <code>sudo cat /root/immich-credentials.txt</code> over SSH), then sign up.</p></body></html>';
    }
    location = /.immich-firstboot/claim-link-refused.json {
        internal;
        access_log off;
        default_type application/json;
        return 403 '{"message":"Creating the first admin needs the claim link: open the claim link in /root/immich-credentials.txt on this VM","error":"Forbidden","statusCode":403}';
    }
    location = /.immich-firstboot/claim-link-refused.html {
        internal;
        access_log off;
        default_type text/html;
        return 403 '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Claim this Immich first</title></head><body><h1>Claim this Immich first</h1><p>Only the owner of this VM can create its first admin account: open the claim link in <code>/root/immich-credentials.txt</code> on this VM (for example <code>sudo cat /root/immich-credentials.txt</code> over SSH), then sign up.</p></body></html>';
    }
}
EOF
ln -sf ../sites-available/immich "$root/etc/nginx/sites-enabled/immich"

(umask 077 && cat >"$root/root/immich-credentials.txt" <<EOF
Immich on this VM
  https://${addrs[0]}/
  Certificate SHA-256 fingerprint: $fingerprint
  The first account becomes the admin: open the claim link, then sign up:
    https://${addrs[0]}/claim/$token
Database
  User: postgres    Database: immich
  Password: $secret
EOF
)
touch "$root/var/lib/immich-firstboot/done"
