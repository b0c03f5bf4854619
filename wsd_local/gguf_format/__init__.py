"""The GGUF file format as wsd-local reads it: header and metadata (reader), file type
names (filetypes), what a context size asks of the machine (context). The backend and
the model management both build on it; it imports neither."""
