// LeakReportCommands: placeholder until its stage lands.
