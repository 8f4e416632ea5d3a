// A top level that waits for something that never comes.
await new Promise(() => {});

export async function hello() {
  return "never loaded";
}
