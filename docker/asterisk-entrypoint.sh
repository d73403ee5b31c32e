#!/bin/sh
# Write the secrets that asterisk-conf/ #includes (manager.conf, pjsip.conf), then run Asterisk.
# Same rules as the chroot lab (ivr/lab/chroot.py): each secrets/<name>.conf has a variable
# (ami-ivr: IVR_AMI_SECRET; sip-<user>: IVR_SIP_<USER>_PASSWORD). A variable set in the
# environment wins; otherwise a random value is generated at the first start and kept in
# $IVR_SECRETS_DIR/secrets.env (mode 0600, the asterisk-secrets volume), so later starts reuse
# it. The AMI secret is also written alone to $IVR_SECRETS_DIR/ami-secret for the ivr service
# (IVR_AMI_SECRET_FILE). ASTERISK_ETC and ASTERISK_RUN move /etc/asterisk and /run/asterisk
# (tests/integration/test_compose.py runs this script outside a container).
# Nobody runs as root after it: Asterisk drops to the asterisk user (-U/-G in the Dockerfile's
# CMD), so the secrets it #includes are given to that user when it exists; the ivr containers
# run as gid IVR_GID (10001, docker/ivr.Dockerfile), which may read ami-secret (0640) and
# nothing else of $IVR_SECRETS_DIR, and shares the recordings directory with Asterisk.
set -eu
umask 077
dir="${IVR_SECRETS_DIR:-/var/lib/ivr-secrets}"
etc="${ASTERISK_ETC:-/etc/asterisk}"
file="$dir/secrets.env"
gid="${IVR_GID:-10001}"
run="${ASTERISK_RUN:-/run/asterisk}"
mkdir -p "$dir" "$etc/secrets" "$run"
chmod 700 "$etc/secrets"
chgrp "$gid" "$dir" && chmod 750 "$dir"   # the ivr group may enter, not list beyond ami-secret
[ -e "$file" ] || printf '# random secrets generated at the first start; delete for new ones\n' > "$file"
chmod 600 "$file"
lines_before=$(wc -l < "$file")

random_value() {  # 128 bits as 32 hex digits
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

value_of() {  # $1: variable name. The environment's value, else the file's, else a new one.
    eval "value=\${$1:-}"
    if [ -z "$value" ]; then
        value=$(sed -n "s/^$1=//p" "$file" | tail -n 1)
    fi
    if [ -z "$value" ]; then
        value=$(random_value)
        printf '%s=%s\n' "$1" "$value" >> "$file"
    fi
    printf '%s' "$value"
}

names=$(sed -n 's|^#include[[:space:]]*"secrets/\([^"]*\)\.conf".*|\1|p' "$etc"/*.conf | sort -u)
for name in $names; do
    case "$name" in
        ami-*) option=secret; var=IVR_AMI_SECRET ;;
        sip-*) option=password
               user=$(printf '%s' "${name#sip-}" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')
               var="IVR_SIP_${user}_PASSWORD" ;;
        *) echo "asterisk-entrypoint: no rule for secrets/$name.conf (ami-*, sip-*)" >&2
           exit 1 ;;
    esac
    value=$(value_of "$var")
    printf '%s = %s\n' "$option" "$value" > "$etc/secrets/$name.conf"
    if [ "$var" = IVR_AMI_SECRET ]; then
        printf '%s\n' "$value" > "$dir/ami-secret"
        chgrp "$gid" "$dir/ami-secret" && chmod 640 "$dir/ami-secret"
    fi
done
if id asterisk >/dev/null 2>&1; then
    chown -R asterisk:asterisk "$etc/secrets" "$run"
fi
recordings="${IVR_RECORDINGS_DIR:-/var/lib/ivr-recordings}"
if [ -d "$recordings" ] && id asterisk >/dev/null 2>&1; then
    # Asterisk writes messages and call recordings, the ivr service reads and expires them
    chown asterisk:"$gid" "$recordings" && chmod 2770 "$recordings"
fi

if [ "$(wc -l < "$file")" -gt "$lines_before" ]; then
    echo "asterisk-entrypoint: generated random SIP passwords / AMI secret into $file"
fi
echo "asterisk-entrypoint: SIP passwords and the AMI secret are in $file (mode 0600):" \
     "docker compose exec asterisk cat $file"
exec "$@"
