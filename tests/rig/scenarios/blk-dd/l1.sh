scenario_pre() { truncate -s 16M "$img"; disk "$img"; }
scenario_post() {
    cmp_val image-sha "guest sha256 of the 4 MiB written" "$(gv written-sha)" "sha256 of the image's first 4 MiB" "$(head -c 4194304 "$img" | sha)"
}
