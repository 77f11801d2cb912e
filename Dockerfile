# HUMBEX: one multi-stage image for every role (`humbex up | migrate | ingest`), run as non-root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p humbex \
    && strip target/release/humbex

FROM debian:bookworm-slim
# ca-certificates: for operators' tools; HUMBEX verifies Bybit against the roots compiled into it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/humbex --create-home humbex
COPY --from=build /src/target/release/humbex /usr/local/bin/humbex
USER humbex
WORKDIR /var/lib/humbex
ENV BACKEND_HOST=0.0.0.0 \
    BACKEND_PORT=8000 \
    LOG_FORMAT=json
EXPOSE 8000
ENTRYPOINT ["humbex"]
CMD ["ingest"]
