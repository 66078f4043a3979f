"""What tests and benchmarks need around the platform, in one place (not shipped in the
installed package): a private stack on free ports in a temporary home (`stack`), and a
headless browser driven over the DevTools protocol (`browser`)."""
