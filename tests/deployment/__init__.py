"""The manifests, the image, and the server run with the Deployment's command and environment."""
