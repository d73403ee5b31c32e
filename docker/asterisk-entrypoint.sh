#!/bin/sh
# Write the secrets that asterisk-conf/ #includes (manager.conf, pjsip.conf) from the
# environment, then run Asterisk. Same files the chroot lab writes (ivr/lab/chroot.py).
set -eu
umask 077
: "${IVR_AMI_SECRET:?IVR_AMI_SECRET must be set (AMI user ivr)}"
mkdir -p /etc/asterisk/secrets /run/asterisk
printf 'secret = %s\n' "$IVR_AMI_SECRET" > /etc/asterisk/secrets/ami-ivr.conf
printf 'password = %s\n' "${IVR_SIP_1001_PASSWORD:-1001-local}" > /etc/asterisk/secrets/sip-1001.conf
printf 'password = %s\n' "${IVR_SIP_1002_PASSWORD:-1002-local}" > /etc/asterisk/secrets/sip-1002.conf
exec "$@"
