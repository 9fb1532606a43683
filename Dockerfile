# syntax=docker/dockerfile:1
# The operator as one static binary (musl libc linked in, rustls: no OpenSSL) in a distroless
# image that runs as a non-root user. How to build and push it: docs/container-image.md.
# tests/gitops_health.rs checks this file against Cargo.toml and the operator's defaults.

# The Rust toolchain of the build stage; at least the workspace's rust-version.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# Alpine's Rust targets musl; musl-dev is the C runtime that ring's build script compiles with.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# The host triple (x86_64-unknown-linux-musl, or aarch64-... on arm64) is named explicitly so
# that +crt-static applies to the operator only, not to build scripts and proc-macros.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target "$target" \
      --package checkout-link-operator --bin checkout-link-operator \
 && cp "target/$target/release/checkout-link-operator" /checkout-link-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /checkout-link-operator /checkout-link-operator
# distroless' "nonroot" user; numeric so that runAsNonRoot can verify it.
USER 65532:65532
# /healthz, /readyz and /metrics (--metrics-addr, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/checkout-link-operator"]
