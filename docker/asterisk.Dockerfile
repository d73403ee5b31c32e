# Asterisk 22 from Debian sid with the project's asterisk-conf/ (the chroot lab uses the same
# suite, packages and config: ivr/lab/chroot.py). Build from the repository root:
#   docker compose build asterisk
# (or scripts/container_images.sh, which makes debian:sid-slim locally with debootstrap).
FROM debian:sid-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-core-sounds-en \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && rm -rf /etc/asterisk && mkdir -p -m 700 /etc/asterisk/secrets /var/lib/ivr-secrets \
 && mkdir -p /run/asterisk \
 && mkdir -p /usr/share/asterisk/sounds/ivr

# Only the *.conf files: asterisk-conf/README.md is for people.
COPY asterisk-conf/*.conf /etc/asterisk/
COPY docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint.sh

# SIP for softphones; RTP range = asterisk-conf/rtp.conf. 5080 (SIPp) and 5038 (AMI) stay on
# the container's loopback, reached by the ivr and caller services sharing its network.
# No password is baked in: the entrypoint generates them at the first start into
# /var/lib/ivr-secrets (a volume in docker-compose.yml).
EXPOSE 5060/udp 10000-14999/udp
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD asterisk -rx "core waitfullybooted" >/dev/null || exit 1

ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint.sh"]
# -f: stay in the foreground (PID 1 is the entrypoint's exec), no console. -U/-G: the
# entrypoint writes the secrets as root, then Asterisk drops to the asterisk user the Debian
# package made (it owns /var/lib, /var/spool and /var/log/asterisk) right after start.
CMD ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk"]
