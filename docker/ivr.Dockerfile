# The IVR server (and, as the "caller" service, SIPp driven by `python -m ivr.lab call`).
# Build from the repository root: docker compose build ivr (or scripts/container_images.sh,
# which also makes the base image locally where no image registry can be reached).
FROM python:3.11-slim-bookworm

# sip-tester + sox: the caller service (SIPp calls, caller voice as A-law); espeak-ng: TTS;
# curl + unzip: the optional Vosk model below. SIPp sends RTP digits and voice from pcaps
# through a raw socket: the file capability lets the non-root user do it where the container
# grants NET_RAW (the caller service's cap_add; the ivr service never runs sipp).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      sip-tester sox espeak-ng ca-certificates curl unzip libcap2-bin \
 && setcap cap_net_raw+ep /usr/bin/sipp \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# A Vosk model for English speech menus, downloaded at build time only when asked for:
#   docker compose build --build-arg VOSK_MODEL=vosk-model-small-en-us-0.15 ivr
# (40 MB; its SHA-256 below is checked, a different model needs its own VOSK_MODEL_SHA256).
# Off by default: machines without access to the model's site still build the image, and
# English speech then uses the embedded pocketsphinx engine.
ARG VOSK_MODEL=
ARG VOSK_MODEL_SHA256=30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498
ARG VOSK_MODEL_URL=https://alphacephei.com/vosk/models
RUN if [ -n "$VOSK_MODEL" ]; then \
      curl -fsSL -o /tmp/model.zip "${VOSK_MODEL_URL}/${VOSK_MODEL}.zip" \
      && echo "${VOSK_MODEL_SHA256}  /tmp/model.zip" | sha256sum -c - \
      && unzip -q /tmp/model.zip -d /opt \
      && rm /tmp/model.zip \
      && test -d "/opt/${VOSK_MODEL}/am" \
      && ln -s "/opt/${VOSK_MODEL}" /opt/vosk-model; \
    fi
# The image says which English engine it can run (ivr.yaml's speech.* is overridden by these):
# Vosk with the model above, else pocketsphinx.
ARG VOSK_ENGINE=${VOSK_MODEL:+vosk}
ENV IVR_SPEECH_ENGLISH_ENGINE=${VOSK_ENGINE:-pocketsphinx} \
    IVR_SPEECH_VOSK_MODEL=${VOSK_MODEL:+/opt/vosk-model}

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir . && rm -rf build
COPY flows ./flows

# Not root: the server runs as ivr (uid/gid 10001; docker/asterisk-entrypoint.sh gives this
# gid read access to the AMI secret and write access to the recordings volume). SQLite call
# records live in the ivr-data volume; prompts/ is mounted from the host and must be writable
# by uid 10001 (compose: IVR_PROMPTS_DIR).
ARG IVR_UID=10001
RUN groupadd --system --gid "$IVR_UID" ivr \
 && useradd --system --uid "$IVR_UID" --gid ivr --home-dir /var/lib/ivr --shell /usr/sbin/nologin ivr \
 && mkdir -p /var/lib/ivr /etc/ivr /app/prompts \
 && chown ivr:ivr /var/lib/ivr /app/prompts
USER ivr
VOLUME ["/var/lib/ivr"]
# FastAGI, AudioSocket and the ops console (compose runs this in the asterisk service's
# network namespace).
EXPOSE 4573 4574 8080
# The admin server's health endpoint (200 while FastAGI listens and the store answers); it is
# not logged, unlike a bare connection to FastAGI.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"

CMD ["ivr", "serve", "--config", "/etc/ivr/ivr.yaml"]
