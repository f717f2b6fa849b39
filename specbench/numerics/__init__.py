"""(1) GLL spectral elements, dopri5 in numpy, the vector-field network, simulation, the common metric."""
