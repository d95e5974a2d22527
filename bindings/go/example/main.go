// SPDX-License-Identifier: LGPL-2.1-or-later

// The README's example: go run libbtrfslayer.org/go/btrfslayer/example HOME
package main

import (
	"fmt"
	"log"
	"os"

	"libbtrfslayer.org/go/btrfslayer"
)

func main() {
	h, err := btrfslayer.Open(os.Args[1], []string{"btrfs.min_space=1M"}, nil, nil)
	check(err)
	defer h.Close()
	check(h.Create("base", "", 0, "", []string{"size=1G"}))
	check(h.Create("image", "base", btrfslayer.CreateReadOnly, "", nil))
	info, err := h.LayerInfo("image")
	check(err)
	usage, err := h.Usage("image", btrfslayer.UsageSync)
	check(err)
	fmt.Printf("info:  %+v\nusage: %+v\n", info, usage)
	check(h.Remove("image"))
	check(h.Remove("base"))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
