# Two stages: build with the Rust toolchain, run on a small Debian base as a non-root user.
FROM rust:1.95-bookworm AS build
# The commit, for maildrift_build_info{revision}:
#   docker build --build-arg MAILDRIFT_REVISION="$(git rev-parse HEAD)" .
# Without it, build.rs asks git (when .git is in the build context) or writes "unknown".
ARG MAILDRIFT_REVISION=
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/maildrift

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/maildrift --create-home maildrift
COPY --from=build /src/target/release/maildrift /usr/local/bin/maildrift
COPY config/example.yml /etc/maildrift/maildrift.yml
USER 10001
WORKDIR /var/lib/maildrift
EXPOSE 9725
ENTRYPOINT ["/usr/local/bin/maildrift"]
CMD ["run", "--config", "/etc/maildrift/maildrift.yml", "--web.listen-address", ":9725"]
