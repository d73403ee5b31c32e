# PostgreSQL for the compose file's cluster profile: Debian's postgresql package on the same
# local base image as docker/asterisk.Dockerfile (no image registry needed). Build from the
# repository root: docker compose --profile cluster build postgres
FROM debian:sid-slim

# postgresql-common first, told not to create its default "main" cluster: the entrypoint
# makes the one cluster in the volume.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?(create_main_cluster)\s*=.*$/\1 = false/' \
      /etc/postgresql-common/createcluster.conf \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" /usr/lib/postgresql/bin

ENV PATH=/usr/lib/postgresql/bin:$PATH \
    PGDATA=/var/lib/postgresql/data/pgdata
COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh

# The data lives in a volume (ivr-pgdata in docker-compose.yml); the ivr nodes connect over
# the compose network, nothing is published on the host.
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
  CMD pg_isready -q -h 127.0.0.1 -p 5432 -d ivr -U ivr || exit 1

ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
