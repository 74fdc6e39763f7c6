"""The bundled local model (SmolLM2 on llama.cpp): the model file, the build check and a supervised server."""
