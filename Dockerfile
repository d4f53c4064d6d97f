# edgezoo with every backend, installed exactly as the README says.
#   docker build -t edgezoo .
#   docker run --rm -v "$PWD/dist:/work/dist" edgezoo export digits-cnn --target raspberrypi
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EDGEZOO_CACHE=/cache

# speech synthesisers and recordings: the audio models' evaluation data is made with them
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng flite alsa-utils \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/edgezoo
COPY pyproject.toml README.md ./
COPY edgezoo ./edgezoo
COPY targets ./targets
RUN pip install --no-cache-dir -e '.[all]' \
    && useradd --create-home --uid 1000 edgezoo \
    && mkdir -p /cache /work \
    && chown edgezoo:edgezoo /cache /work

USER 1000:1000
WORKDIR /work
VOLUME ["/cache"]
ENTRYPOINT ["edgezoo"]
CMD ["--help"]
