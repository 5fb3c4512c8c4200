# stackhand — entry points. `make demo` runs the local demo; `make test` runs every test.
# Both install what they need (a project venv; apt for MariaDB when a function needs it).

SHELL := /bin/bash
# One target directory outside the clone, shared by every checkout on this machine: the AWS SDK
# crates are heavy, so a fresh clone reuses what an earlier one built.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/stackhand/target
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: help test demo run bench fuzz package deploy setup stack-up stack-down lint fmt build clean

help:
	@echo "make demo    the local demo: moto + cargo-lambda, each function through what CloudFormation does"
	@echo "make test    every test: rustfmt, clippy, cfn-lint, the IAM check, unit, runtime faults, integration against moto and MariaDB"
	@echo "make bench   side-by-side benchmarks against peers (release builds), written to docs/benchmarks.md"
	@echo "make fuzz    cargo-fuzz over the event envelope and the schedule language (FUZZ_SECONDS each, default 60)"
	@echo "make package arm64 Lambda zips (cargo-lambda + zig) in target/lambda/<function>/bootstrap.zip, each within its budget (docs/package-sizes.md)"
	@echo "make deploy  sam build + sam deploy --guided into your AWS account (needs the SAM CLI)"
	@echo "make lint    rustfmt --check, clippy -D warnings, cfn-lint"
	@echo "make stack-up / stack-down   the local stack by hand (then: eval \"\$$(scripts/stack env)\")"

setup:
	@scripts/setup

test: setup
	@scripts/test

demo: setup
	@.venv/bin/python scripts/demo.py

run: demo

bench: setup
	@scripts/bench

fuzz:
	@scripts/fuzz

package: setup
	@scripts/package

# Needs an AWS account and the SAM CLI (pip install aws-sam-cli); not run in CI. SAM's rust-cargolambda
# build method is a beta feature, hence --beta-features.
deploy: setup
	@command -v sam >/dev/null || { echo "make deploy needs the AWS SAM CLI: pip install aws-sam-cli" >&2; exit 1; }
	sam build --beta-features
	sam deploy --guided

build:
	cargo build --workspace --all-targets

stack-up: setup
	@scripts/stack up moto

stack-down:
	@scripts/stack down

fmt:
	cargo fmt --all

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cfn-lint template.yaml examples/*.yaml

clean:
	scripts/stack down
	rm -rf .local
