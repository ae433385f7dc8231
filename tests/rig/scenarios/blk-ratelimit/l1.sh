# vda: 24 MiB, limited to 2 MiB/s (bw=2097152:1000, full at start);
# vdb: 8 MiB, limited to 200 requests per second (ops=200:1000).
scenario_pre() {
    truncate -s 24M "$img"
    truncate -s 8M "$img2"
    VMM_EXTRA="--disk path=$img,bw=2097152:1000 --disk path=$img2,ops=200:1000"
}
