.PHONY: demo test

demo:  ## set up and run a small sweep, then write the report
	bash scripts/demo.sh

test:  ## set up and run lint and every test
	bash scripts/test.sh
