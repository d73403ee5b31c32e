# The cluster profile's DNS server: dnsmasq answering the FastAGI SRV records that
# AGI(hagi://ivr.cluster/...) looks up, on the same local base image as
# docker/asterisk.Dockerfile. Build from the repository root:
#   docker compose --profile cluster build dns
FROM debian:sid-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dnsmasq-base \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

COPY docker/dns-cluster.conf /etc/dnsmasq-cluster.conf
EXPOSE 53/udp 53/tcp
# --keep-in-foreground: PID 1 is dnsmasq; the records are in the conf file.
ENTRYPOINT ["dnsmasq", "--keep-in-foreground", "--conf-file=/etc/dnsmasq-cluster.conf"]
