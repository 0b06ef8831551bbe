"""Moving SAEs between this project and other SAE libraries (SAELens: `sae.interop.saelens`)."""
