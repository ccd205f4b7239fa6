"""The quality domain: records, lifecycles and the rules R1-R10; depends on nothing of ours."""
