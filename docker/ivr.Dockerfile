# The IVR server (and, as the "caller" service, SIPp driven by `python -m ivr.lab call`).
# Build from the repository root: docker compose build ivr
FROM python:3.11-slim-bookworm

# sip-tester + sox: the caller service (SIPp calls, caller voice as A-law); espeak-ng: TTS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      sip-tester sox espeak-ng curl unzip \
 && rm -rf /var/lib/apt/lists/*

# Vosk's small US English model (40 MB), loaded once at start-up (ivr.yaml: speech.vosk_model).
ARG VOSK_MODEL=vosk-model-small-en-us-0.15
RUN curl -fsSL -o /tmp/model.zip "https://alphacephei.com/vosk/models/${VOSK_MODEL}.zip" \
 && unzip -q /tmp/model.zip -d /opt \
 && rm /tmp/model.zip \
 && test -d "/opt/${VOSK_MODEL}/am"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir .
COPY flows ./flows

# SQLite call records live in the ivr-data volume.
RUN mkdir -p /var/lib/ivr /etc/ivr
VOLUME ["/var/lib/ivr"]
# FastAGI, AudioSocket and the ops console (compose runs this in the asterisk service's
# network namespace).
EXPOSE 4573 4574 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import socket; socket.create_connection(('127.0.0.1', 4573), 2).close()"

CMD ["ivr", "serve", "--config", "/etc/ivr/ivr.yaml"]
