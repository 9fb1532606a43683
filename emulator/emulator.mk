# polar-emulator targets, included from the root Makefile
# (`include emulator/emulator.mk`); paths are relative to the repository root.
CARGO ?= cargo

.PHONY: test-emulator schemathesis polar-sdk bench-emulator run-emulator

## test-emulator: the emulator's unit and behaviour tests (real HTTP on loopback)
test-emulator:
	$(CARGO) test -p polar-emulator

## schemathesis: check the emulator against Polar's OpenAPI document
schemathesis:
	CARGO="$(CARGO)" bash hack/schemathesis.sh

## polar-sdk: drive every checkout-link call of Polar's Python SDK (PyPI polar-sdk) against the emulator
polar-sdk:
	CARGO="$(CARGO)" bash hack/polar-sdk.sh

## bench-emulator: release build, then 5 s of create/get/list/patch over 32 connections
bench-emulator:
	$(CARGO) bench -p polar-emulator --bench throughput

## run-emulator: serve the demo seed on 127.0.0.1:8787 with working local checkout URLs
run-emulator:
	$(CARGO) run -p polar-emulator --bin polar-emulator -- --listen 127.0.0.1:8787 \
		--url-template '{base_url}/v1/checkout-links/{client_secret}/redirect'
