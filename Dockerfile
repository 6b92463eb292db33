# Build: the Rust toolchain with everything bundled (libpq, SQLite), then a slim runtime image.
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY migrations migrations
COPY openapi openapi
RUN cargo build --release --locked --bin minsheng

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /data minsheng \
    && mkdir -p /data && chown minsheng /data
COPY --from=build /src/target/release/minsheng /usr/local/bin/minsheng
USER minsheng
WORKDIR /data
ENV MINSHENG_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["minsheng"]
CMD ["serve"]
