import sys
import btrfslayer

with btrfslayer.Handle(sys.argv[1]) as h:  # a home on btrfs
    h.create("base", storage_opts={"size": "1G"})  # turns quotas on if off
    with open(h.get("base") + "/hello", "w") as f:
        f.write("hello\n")
    h.create("image", "base", read_only=True)
    print(h.layer_info("image"))
    print(h.get_usage("image", sync=True))
    h.remove("image")
    h.remove("base")
