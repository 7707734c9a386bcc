// Reports: placeholder until its stage lands.
