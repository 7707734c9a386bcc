// Symbolization: placeholder until its stage lands.
