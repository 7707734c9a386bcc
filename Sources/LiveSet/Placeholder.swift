// LiveSet: placeholder until its stage lands.
