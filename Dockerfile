# One image for every role of s4t: the cloud (`s4t cloud`), the Crossplane provider
# (`s4t provider run`) and the board agent. Build: docker build -t s4t .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p s4t \
 && strip target/release/s4t

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --home-dir /var/lib/s4t --create-home s4t
COPY --from=build /src/target/release/s4t /usr/local/bin/s4t
USER 65532:65532
WORKDIR /var/lib/s4t
# REST API, board router (WAMP), service tunnels.
EXPOSE 8812 8181 8080
ENTRYPOINT ["/usr/local/bin/s4t"]
CMD ["cloud", "--data-dir", "/var/lib/s4t", "--api-addr", "0.0.0.0:8812", "--wamp-addr", "0.0.0.0:8181", "--tunnel-addr", "0.0.0.0:8080"]
