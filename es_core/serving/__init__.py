"""Model versions in the inference server: deploying, undeploying, listing."""
