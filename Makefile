# scene_llm_ros developer entry points. The two a newcomer needs:
#   make demo   set up, then run the main job end to end
#   make test   set up, then run the test suite
SHELL := /bin/bash
ENV := . tools/env.sh

.PHONY: setup test demo lint build lock clean

setup:
	@bash tools/setup.sh

test: setup
	@$(ENV) && python -m pytest test

demo: setup
	@$(ENV) && bash tools/demo.sh

lint: setup
	@$(ENV) && ruff check .

# Rebuild the interfaces after editing msg/, srv/ or action/ (setup does it when they change).
build: setup

# Re-pin requirements.txt from requirements.in (needs the package registry).
lock:
	@bash tools/lock.sh

clean:
	rm -rf build install log
