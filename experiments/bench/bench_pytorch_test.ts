/** The authors'-code baseline's data root: what torchvision reads, made within `bench:train`'s permissions. */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { mnistDataroot } from "./bench_pytorch.ts";

Deno.test("mnistDataroot: the four IDX files as regular files under MNIST/raw (no links)", async () => {
  const root = await mnistDataroot();
  try {
    const names = [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ];
    // IDX sizes: 16-byte header + 28x28 per image, 8-byte header + 1 per label.
    const sizes = [16 + 60000 * 784, 8 + 60000, 16 + 10000 * 784, 8 + 10000];
    for (const [i, name] of names.entries()) {
      const st = await Deno.lstat(`${root}/MNIST/raw/${name}`);
      // A symbolic link would need unscoped --allow-read/--allow-write, which the task does not grant.
      assertTrue(st.isFile && !st.isSymlink, `${name} is a regular file`);
      assertEquals(st.size, sizes[i], name);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
