module libbtrfslayer.org/go/btrfslayer

go 1.19
