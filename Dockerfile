# Build the platform, then run it on a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sample-platform

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sample-platform /usr/local/bin/sample-platform
RUN useradd --system --home /var/lib/sample-platform --create-home sample-platform
USER sample-platform
WORKDIR /var/lib/sample-platform
EXPOSE 8080
ENTRYPOINT ["sample-platform"]
CMD ["serve"]
