"""Data: the shapes generator, caption dataset readers, image features, LM corpora,
the tokenizer and vocabulary, and the LightningDataModules the models train on."""
