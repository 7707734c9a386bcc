// LeakAnalysis: placeholder until its stage lands.
