module example.com/hello

go 1.23

require example.com/greet v0.1.0

// A local module, so the example has a dependency to list in its SBOM without any network.
replace example.com/greet => ./greet
